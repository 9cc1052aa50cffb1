export { AdminModule } from './admin.module';
export { AdminService } from './admin.service';
